module kaic.dev/conformance

go 1.26
