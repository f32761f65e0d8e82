// Command kaic-runsc puts gVisor's runsc (beside it in cluster/bin) behind containerd's runc shim, the
// part of gVisor's own shim that this host cannot run (that shim needs CAP_SYS_RESOURCE; cluster/README.md).
//
// runsc speaks runc's command line, with three differences the runc shim cannot absorb, all for a container
// that joins a pod's sandbox: runsc writes the sandbox's pid to --pid-file (the shim learns of an exit only
// by reaping that pid), takes the container's stdio from `start` (the shim passes it to `create`), and
// refuses `kill` on a stopped sandbox with a message the shim does not recognise. So `create` leaves behind
// a watcher, a child of the shim holding create's stdio, whose pid goes to the pid file; `start` tells it to
// run `runsc start`, after which it runs `runsc wait` and exits with the container's status. Everything else
// goes to runsc unchanged.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

const (
	// containerd's CRI marks a pod's containers other than the sandbox with this annotation.
	containerType = "io.kubernetes.cri.container-type"
	watchCommand  = "kaic-watch"
	// FIFOs in the container's bundle: start (or stop) goes to the watcher, runsc start's status comes back.
	toWatcher   = "kaic-runsc.go"
	fromWatcher = "kaic-runsc.started"
)

// runc's global flags that take a value as the next argument (go-runc passes them so).
var valueFlags = []string{"--root", "--log", "--log-format", "--criu"}

var runsc string

func main() {
	self, err := os.Executable()
	if err != nil {
		fail(err)
	}
	runsc = filepath.Join(filepath.Dir(self), "runsc")
	args := os.Args[1:]
	if len(args) > 0 && args[0] == watchCommand {
		os.Exit(watch(args[1:]))
	}
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		if slices.Contains(valueFlags, args[i]) {
			i++
		}
		i++
	}
	if i >= len(args) {
		execRunsc(args)
	}
	global, command, rest := args[:i], args[i], args[i+1:]
	switch command {
	case "create":
		create(global, rest)
	case "start":
		start(global, rest)
	case "kill":
		kill(global, rest)
	case "delete":
		stopWatcher(global, rest)
	}
	execRunsc(args)
}

// create runs `runsc create` without --pid-file for a container that joins a sandbox, then starts its watcher.
func create(global, rest []string) {
	var bundle, pidFile string
	var args []string
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case "--bundle", "-b":
			bundle = rest[i+1]
		case "--pid-file":
			pidFile = rest[i+1]
			i++
			continue
		}
		args = append(args, rest[i])
	}
	var spec struct {
		Annotations map[string]string `json:"annotations"`
	}
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil || json.Unmarshal(data, &spec) != nil || spec.Annotations[containerType] != "container" {
		return
	}
	id := rest[len(rest)-1]
	cmd := exec.Command(runsc, append(append(slices.Clone(global), "create"), args...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		os.Exit(exitCode(err))
	}
	for _, name := range []string{toWatcher, fromWatcher} {
		if err := syscall.Mkfifo(filepath.Join(bundle, name), 0o600); err != nil {
			fail(err)
		}
	}
	// Opened read-write, the FIFO has a reader from now on (the watcher's copy, fd 3), so an order never waits
	// for the watcher to start, and one finds none once it is gone.
	orders, err := os.OpenFile(filepath.Join(bundle, toWatcher), os.O_RDWR, 0)
	if err != nil {
		fail(err)
	}
	self, _ := os.Executable()
	watcher := exec.Command(self, append(append([]string{watchCommand}, global...), id, bundle)...)
	watcher.Stdin, watcher.Stdout, watcher.Stderr = os.Stdin, os.Stdout, os.Stderr
	watcher.ExtraFiles = []*os.File{orders}
	if err := watcher.Start(); err != nil {
		fail(err)
	}
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(watcher.Process.Pid)), 0o644); err != nil {
		fail(err)
	}
	os.Exit(0)
}

// watch waits for start, runs `runsc start` with the container's stdio, then `runsc wait`; its exit status
// is the container's.
func watch(args []string) int {
	global, id, bundle := args[:len(args)-2], args[len(args)-2], args[len(args)-1]
	order, err := bufio.NewReader(os.NewFile(3, toWatcher)).ReadString('\n')
	if err != nil || order != "start\n" {
		return 1
	}
	cmd := exec.Command(runsc, append(slices.Clone(global), "start", id)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	status := exitCode(cmd.Run())
	if err := os.WriteFile(filepath.Join(bundle, fromWatcher), []byte(strconv.Itoa(status)), 0); err != nil || status != 0 {
		return 1
	}
	out, err := exec.Command(runsc, append(slices.Clone(global), "wait", id)...).Output()
	var result struct {
		ExitStatus int `json:"exitStatus"`
	}
	if err != nil || json.Unmarshal(out, &result) != nil {
		return 1
	}
	return result.ExitStatus
}

// start hands a watched container's start to its watcher and returns runsc start's status.
func start(global, rest []string) {
	bundle, ok := watched(global, rest[len(rest)-1])
	if !ok {
		return
	}
	if err := order(bundle, "start"); err != nil {
		fail(fmt.Errorf("no watcher for %s: %w", bundle, err))
	}
	status, err := os.ReadFile(filepath.Join(bundle, fromWatcher))
	if err != nil {
		fail(err)
	}
	code, err := strconv.Atoi(string(status))
	if err != nil {
		fail(err)
	}
	os.Exit(code)
}

// stopWatcher lets the watcher of a container deleted before it started exit.
func stopWatcher(global, rest []string) {
	bundle, ok := watched(global, rest[len(rest)-1])
	if !ok {
		return
	}
	_ = order(bundle, "stop")
}

// order writes to the watcher; ENXIO when there is none any more.
func order(bundle, word string) error {
	f, err := os.OpenFile(filepath.Join(bundle, toWatcher), os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(word + "\n")
	return errors.Join(err, f.Close())
}

// kill answers as runc does for a container that is no longer running: --all succeeds, a signal to it fails
// with the words the runc shim recognises.
func kill(global, rest []string) {
	cmd := exec.Command(runsc, append(append(slices.Clone(global), "kill"), rest...)...)
	cmd.Stdout = os.Stdout
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil {
		os.Exit(0)
	}
	if status, _ := state(global, rest[len(rest)-2]); status == "created" || status == "running" || status == "paused" {
		fmt.Fprint(os.Stderr, stderr.String())
		os.Exit(exitCode(err))
	}
	if slices.Contains(rest, "--all") || slices.Contains(rest, "-a") {
		os.Exit(0)
	}
	fmt.Fprintln(os.Stderr, "container not running")
	os.Exit(1)
}

// watched is the bundle of a container that has a watcher.
func watched(global []string, id string) (string, bool) {
	_, bundle := state(global, id)
	if bundle == "" {
		return "", false
	}
	info, err := os.Stat(filepath.Join(bundle, toWatcher))
	return bundle, err == nil && info.Mode()&os.ModeNamedPipe != 0
}

// state is runsc's status and bundle of the container, empty when runsc cannot tell.
func state(global []string, id string) (string, string) {
	out, err := exec.Command(runsc, append(slices.Clone(global), "state", id)...).Output()
	var result struct {
		Status string `json:"status"`
		Bundle string `json:"bundle"`
	}
	if err != nil || json.Unmarshal(out, &result) != nil {
		return "", ""
	}
	return result.Status, result.Bundle
}

func execRunsc(args []string) {
	fail(syscall.Exec(runsc, append([]string{runsc}, args...), os.Environ()))
}

func exitCode(err error) int {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		return 1
	}
	return 0
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kaic-runsc:", err)
	os.Exit(1)
}
