// Package pipeline reads the Azure Pipelines YAML teams commit as
// azure-pipelines.yml: the subset Slipway runs, with templates,
// parameters, template expressions and conditions. Whatever lies outside
// the subset is refused with the file and line before anything runs, so
// a pipeline never half-runs because of a keyword the runner ignored.
//
// Loading has two phases, as in Azure DevOps: first the template phase
// (parameters, `${{ }}` expressions, `${{ if }}`/`${{ each }}`, and
// `template:` references) turns the files into one tree; then that tree is
// checked against the subset and decoded into a Pipeline. Runtime
// expressions (`condition:` and `$( )` macros) are left for the runner.
package pipeline

import "strconv"

// Pipeline is a loaded pipeline, templates expanded.
type Pipeline struct {
	// File is the path the pipeline was loaded from.
	File string
	// Name is the run-name format (`name:`), if any.
	Name string
	// Trigger says which pushes start a run; nil means every branch.
	Trigger *Trigger
	// PR is parsed and kept, but the local runner has no pull requests.
	PR *Trigger
	// Extends is the template the pipeline extends (extends:), if any.
	Extends    *Template
	Parameters []Parameter
	// Variables are the pipeline-level variables, in file order.
	Variables []Variable
	// Stages always holds at least one stage: a file with only jobs or
	// only steps has one implicit stage (and job).
	Stages []*Stage
}

// Trigger is a CI or PR trigger.
type Trigger struct {
	// None: `trigger: none`.
	None bool
	// Batch: while a run is in progress, later pushes wait and then run
	// once, for the newest commit.
	Batch    bool
	Branches Filter
	Paths    Filter
	Tags     Filter
}

// Filter is an include/exclude list of patterns (`*` wildcards).
type Filter struct {
	Include, Exclude []string
}

// Parameter is a template or pipeline parameter and its resolved value.
type Parameter struct {
	Name        string
	DisplayName string
	Type        string
	Default     any
	Values      []any
	// Value is the value in effect: the one given, else the default.
	Value any
}

// Variable is a variable definition.
type Variable struct {
	Name     string
	Value    string
	ReadOnly bool
}

// Stage is a stage of jobs.
type Stage struct {
	Name        string
	DisplayName string
	// DependsOn lists the stages this one waits for; nil means the
	// previous stage (Azure's default), empty means none.
	DependsOn []string
	Condition string
	Variables []Variable
	Jobs      []*Job
	Pos       Pos
}

// Job is a job of steps; it runs in its own workspace.
type Job struct {
	Name        string
	DisplayName string
	// DependsOn lists jobs of the same stage; nil and empty both mean none.
	DependsOn        []string
	Condition        string
	Variables        []Variable
	Steps            []*Step
	TimeoutInMinutes int
	// CancelTimeoutInMinutes is how long always() and canceled() steps
	// may run after the job was canceled or timed out (0: 5 minutes).
	CancelTimeoutInMinutes int
	ContinueOnError        bool
	// Container is the image the job runs in (container:), when it says
	// one; the runner's default image otherwise.
	Container string
	Pos       Pos
}

// Step kinds.
const (
	KindScript   = "script"
	KindBash     = "bash"
	KindCheckout = "checkout"
	KindPublish  = "publish"
	// KindNoop is a task Slipway satisfies itself (HelmInstaller); the
	// runner prints Message and succeeds.
	KindNoop = "noop"
	// KindGoTool checks the Go toolchain the steps will use (GoTool@0).
	KindGoTool = "gotool"
)

// Step is one step of a job. Task steps are mapped to the kinds above.
type Step struct {
	Kind string
	// Script is the inline script of script and bash steps.
	Script string
	// File and Arguments: a bash step that runs a file (Bash@3 filePath).
	File, Arguments string
	// Checkout is "self" or "none".
	Checkout string
	// FetchDepth, Clean: checkout options.
	FetchDepth int
	Clean      bool
	// Publish is the path to publish and Artifact the artifact's name.
	Publish, Artifact string
	// Task names the task this step came from, such as "Bash@3".
	Task string
	// Message is what a no-op task prints; Version the Go version asked.
	Message, Version string

	DisplayName      string
	Name             string
	Env              []Variable
	WorkingDirectory string
	FailOnStderr     bool
	ContinueOnError  bool
	TimeoutInMinutes int
	Condition        string
	Enabled          bool
	Pos              Pos
}

// Pos is where something was written.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return p.File + ":" + strconv.Itoa(p.Line)
}

// Error is a problem in a pipeline file, with its place.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }
