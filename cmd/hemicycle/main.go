// Command hemicycle runs Hemicycle: the media and signalling server, the deliberation API and
// the web client, in one binary.
//
//	hemicycle --dev                         development server on 127.0.0.1:7880, keys devkey/secret
//	hemicycle serve --config FILE           deployment
//	hemicycle token --room R --identity I   mint an access token
//	hemicycle journal verify FILE           check a journal's chain and signatures offline
//	hemicycle journal keys rotate           rotate the key ring that signs the journals
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(exitCode(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv), os.Stderr))
}

// exitCode is what the process ends with: 0 when it did what was asked, including printing a
// command's usage for --help; 2 after saying what went wrong.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	default:
		fmt.Fprintln(stderr, "hemicycle:", err)
		return 2
	}
}

const usage = `Hemicycle: hybrid council meetings.

Usage:
  hemicycle --dev [flags]                 development server (127.0.0.1:7880, keys devkey/secret)
  hemicycle serve --config FILE [flags]   deployment server
  hemicycle token [flags]                 mint an access token
  hemicycle journal verify FILE           check a session journal's hash chain and signatures offline
  hemicycle journal keys ACTION           the key ring that signs the journals (new, rotate, public)
  hemicycle minutes --journal FILE        draft minutes (procès-verbal) from a session's journal
  hemicycle bench --scenario S [flags]    load a LiveKit-protocol server with synthetic participants
  hemicycle help                          this text

Run "hemicycle COMMAND --help" for a command's flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command: try --dev")
	}
	switch args[0] {
	case "serve":
		return cmdServe(ctx, args[1:], stdout, stderr, getenv, false)
	case "token":
		return cmdToken(args[1:], stdout, stderr, getenv)
	case "journal":
		return cmdJournal(args[1:], stdout, stderr)
	case "minutes":
		return cmdMinutes(args[1:], stdout, stderr)
	case "bench":
		return cmdBench(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	if len(args[0]) > 0 && args[0][0] == '-' {
		// Flags first: "hemicycle --dev ..." is the serve command in development mode.
		return cmdServe(ctx, args, stdout, stderr, getenv, true)
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// commandFlags is a subcommand's flag set: its errors go to stderr, and a mistake is returned
// to run rather than exiting; its usage, asked for with -h or --help, goes to stdout.
type commandFlags struct {
	*flag.FlagSet
	stdout io.Writer
}

func subcommandFlags(name string, stdout, stderr io.Writer) commandFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage of hemicycle %s:\n", name)
		fs.PrintDefaults()
	}
	return commandFlags{FlagSet: fs, stdout: stdout}
}

// Parse parses args, or prints the usage to stdout and returns flag.ErrHelp when they ask for
// it (before any "--").
func (c commandFlags) Parse(args []string) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			c.SetOutput(c.stdout)
			c.Usage()
			return flag.ErrHelp
		}
	}
	return c.FlagSet.Parse(args)
}

// parseOptions reads a subcommand's options. Every input is an option, so a word left over
// (a value whose option was mistyped or forgotten) is refused rather than ignored.
func parseOptions(fs commandFlags, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %q: each value goes after its option (hemicycle %s --help lists them)",
			fs.Name(), strings.Join(fs.Args(), " "), fs.Name())
	}
	return nil
}
