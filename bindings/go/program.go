package leeward

// Programs (protocol v2 "argv"): a job that runs a program instead of Python, with the
// same isolation, limits and result as code.
//
//	res, err := client.Run(ctx, []string{"sh", "-c", "echo hi | tr a-z A-Z"}, nil)
//	// res.ExitCode == 0, string(res.Stdout) == "HI\n"
//
// argv[0] is looked up on the sandbox's PATH (/usr/local/bin:/usr/bin:/bin unless Env
// sets PATH); no shell is involved unless you run one. ExitCode is the program's; 128+N
// when signal N ended it, 127 when argv[0] was not found, 126 when it could not be run,
// -9 when the daemon killed it at its timeout.

import "context"

// ProgramOptions are the settings of Client.Run; a nil *ProgramOptions means all defaults.
type ProgramOptions struct {
	Options
	Stdin   []byte
	Env     map[string]string // laid over the sandbox's safe environment
	Files   map[string][]byte // relative path in the workdir (/tmp) -> content, written first
	Collect []string          // globs relative to the workdir; matching files come back in Files
	// ExecutionID names the job for Cancel from elsewhere; empty: one is made.
	ExecutionID string
}

// Run runs a program in a fresh sandbox and waits for it. Cancelling ctx while it runs
// sends Cancel: the program is killed and the result, with Cancelled set, is returned.
// A daemon that does not run programs (its Ping does not list "argv") fails with E2010.
func (c *Client) Run(ctx context.Context, argv []string, opts *ProgramOptions) (*CellResult, error) {
	return c.RunStream(ctx, argv, opts, nil)
}

// RunStream is Run calling onEvent (may be nil) for each stdout and stderr chunk as it
// arrives, as ExecuteStream does.
func (c *Client) RunStream(ctx context.Context, argv []string, opts *ProgramOptions,
	onEvent func(Event)) (*CellResult, error) {
	if opts == nil {
		opts = &ProgramOptions{}
	}
	if err := c.needArgv(ctx); err != nil {
		return nil, err
	}
	request := map[string]any{"type": "Execute", "argv": argv}
	addJobFields(request, opts.Options, opts.Stdin, opts.Collect)
	addFilesAndEnv(request, opts.Files, opts.Env)
	return c.runStreaming(ctx, request, opts.ExecutionID, onEvent)
}

// RunProgram runs a program as the session's next cell: in the session's sandbox, with
// its workdir and environment. Past opts.Timeout the program gets SIGINT, and the session
// is killed if it ignores that; cancelling ctx interrupts it the same way (the session
// lives on). NoDisplay does not apply: a program has no display results.
func (s *Session) RunProgram(ctx context.Context, argv []string, opts *RunOptions) (*CellResult, error) {
	return s.RunProgramStream(ctx, argv, opts, nil)
}

// RunProgramStream is RunProgram calling onEvent (may be nil) for each output chunk as it arrives.
func (s *Session) RunProgramStream(ctx context.Context, argv []string, opts *RunOptions,
	onEvent func(Event)) (*CellResult, error) {
	if opts == nil {
		opts = &RunOptions{}
	}
	if err := s.client.needArgv(ctx); err != nil {
		return nil, err
	}
	request := map[string]any{"type": "SessionExecute", "session_id": s.ID, "argv": argv}
	addCellFields(request, opts)
	return s.client.runStreaming(ctx, request, opts.ExecutionID, onEvent)
}

// needArgv fails with E2010 unless the daemon runs programs: a daemon without the
// feature would refuse the field as unknown (E2004), which names the wrong cause.
func (c *Client) needArgv(ctx context.Context) error {
	argv, err := c.offers(ctx, "argv")
	if err != nil {
		return err
	}
	if !argv {
		return &Error{Code: CodeFeatureDisabled, Message: `this daemon does not run programs (its Ping does not list "argv")`}
	}
	return nil
}
