from kaic.cli import main

main()
