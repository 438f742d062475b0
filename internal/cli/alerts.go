package cli

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/events"
	"github.com/slipway-dev/slipway/internal/monitoring"
	"github.com/slipway-dev/slipway/internal/platform"
)

func newAlertsCmd(g *globals) *cobra.Command {
	var (
		team   string
		recent time.Duration
		output outputFormat
	)
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "Show the alerts that fire, are silenced or inhibited, and those resolved lately",
		Long: `Show the platform's alerts as Alertmanager holds them: firing, silenced (by
whom, until when) or inhibited (a release that is not Ready hides the
symptoms in its namespace), with why and since when; then the alerts that
resolved within --recent, from the timeline.

A team's user sees its own team's alerts; ops sees all (--team narrows it).
The rules live in the fleet repository under monitoring/rules/.`,
		Example: "  slipway alerts\n  slipway alerts --team dev2 -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, user, password, err := g.caller()
			if err != nil {
				return err
			}
			list, err := p.Alerts(cmd.Context(), user, password, team)
			if err != nil {
				return err
			}
			sort.Slice(list, func(i, j int) bool { return list[i].StartsAt.Before(list[j].StartsAt) })
			var resolved []events.Event
			if recent > 0 {
				all, err := p.Events(cmd.Context(), user, password, team, recent.String(), 1000)
				if err != nil {
					return err
				}
				for _, e := range all {
					if e.Source == events.SourceAlert && e.Reason == "AlertResolved" {
						resolved = append(resolved, e)
					}
				}
			}
			if done, err := printStructured(g.streams.Out, output, struct {
				Alerts   []monitoring.Alert `json:"alerts"`
				Resolved []events.Event     `json:"resolved"`
			}{list, resolved}); done {
				return err
			}
			if len(list) == 0 {
				fmt.Fprintln(g.streams.Out, "no alerts fire")
			} else {
				tw := tabwriter.NewWriter(g.streams.Out, 0, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "STATE\tSEVERITY\tTEAM\tALERT\tWHERE\tSINCE\tSUMMARY")
				for _, a := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", alertState(a), a.Labels["severity"], orDash(a.Labels["team"]),
						a.Labels["alertname"], alertWhere(a.Labels), a.StartsAt.Local().Format(time.DateTime), a.Annotations["summary"])
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			if len(resolved) > 0 {
				fmt.Fprintf(g.streams.Out, "\nresolved in the last %s:\n", recent)
				tw := tabwriter.NewWriter(g.streams.Out, 0, 8, 2, ' ', 0)
				for _, e := range resolved {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Time.Local().Format(time.DateTime), orDash(e.Team), e.Name, e.Message)
				}
				return tw.Flush()
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&team, "team", "", "only this team's alerts")
	cmd.Flags().DurationVar(&recent, "recent", time.Hour, "also show the alerts resolved within this time (0: none)")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func alertState(a monitoring.Alert) string {
	switch {
	case len(a.Status.SilencedBy) > 0:
		return "silenced"
	case len(a.Status.InhibitedBy) > 0:
		return "inhibited"
	case a.Status.State == "active":
		return "firing"
	}
	return a.Status.State
}

// alertWhere names what an alert is about: namespace/pod or /app, else
// its job and instance.
func alertWhere(l map[string]string) string {
	switch {
	case l["namespace"] != "" && l["pod"] != "":
		return l["namespace"] + "/" + l["pod"]
	case l["namespace"] != "" && l["app"] != "":
		return l["namespace"] + "/" + l["app"]
	case l["namespace"] != "":
		return l["namespace"]
	case l["job"] != "":
		return l["job"] + " " + l["instance"]
	case l["certificate"] != "":
		return l["certificate"]
	}
	return "-"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newSilenceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "silence",
		Short: "Mute alerts for a while: create, list or expire silences",
	}
	var (
		team     string
		duration time.Duration
		comment  string
		output   outputFormat
	)
	create := &cobra.Command{
		Use:   "create LABEL=VALUE...",
		Short: "Mute the alerts whose labels match, for --for",
		Long: `Mute the alerts whose labels match every LABEL=VALUE (LABEL=~REGEX for a
regular expression), for --for. A team's user silences only its own team's
alerts: the platform adds team=TEAM to the matchers. The silence records
who made it.`,
		Example: "  slipway silence create alertname=SlipwayHighErrorRatio app=quotes --for 30m --comment 'fix on its way'",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var matchers []monitoring.Matcher
			for _, a := range args {
				m, err := parseMatcher(a)
				if err != nil {
					return usageError("%v", err)
				}
				matchers = append(matchers, m)
			}
			p, user, password, err := g.caller()
			if err != nil {
				return err
			}
			id, err := p.CreateSilence(cmd.Context(), user, password, platform.SilenceRequest{Team: team, Matchers: matchers, Duration: duration.String(), Comment: comment})
			if err != nil {
				return err
			}
			fmt.Fprintln(g.streams.Out, id)
			return nil
		},
	}
	create.Flags().StringVar(&team, "team", "", "the team whose alerts to mute (a team's user: its own)")
	create.Flags().DurationVar(&duration, "for", 2*time.Hour, "how long the silence lasts (at most 168h)")
	create.Flags().StringVar(&comment, "comment", "", "why, for whoever reads the silence")
	list := &cobra.Command{
		Use:   "list",
		Short: "Show the silences",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, user, password, err := g.caller()
			if err != nil {
				return err
			}
			silences, err := p.Silences(cmd.Context(), user, password, team)
			if err != nil {
				return err
			}
			if done, err := printStructured(g.streams.Out, output, silences); done {
				return err
			}
			tw := tabwriter.NewWriter(g.streams.Out, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tMATCHERS\tUNTIL\tBY\tCOMMENT")
			for _, s := range silences {
				state := ""
				if s.Status != nil {
					state = s.Status.State
				}
				var ms []string
				for _, m := range s.Matchers {
					ms = append(ms, matcherString(m))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, state, strings.Join(ms, ","), s.EndsAt.Local().Format(time.DateTime), s.CreatedBy, s.Comment)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&team, "team", "", "only this team's silences")
	addOutputFlag(list.Flags(), &output)
	expire := &cobra.Command{
		Use:   "expire ID",
		Short: "End a silence now",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, user, password, err := g.caller()
			if err != nil {
				return err
			}
			return p.ExpireSilence(cmd.Context(), user, password, args[0])
		},
	}
	cmd.AddCommand(create, list, expire)
	return cmd
}

// parseMatcher reads LABEL=VALUE, LABEL!=VALUE, LABEL=~REGEX or
// LABEL!~REGEX.
func parseMatcher(s string) (monitoring.Matcher, error) {
	for _, op := range []string{"!=", "=~", "!~", "="} {
		if name, value, ok := strings.Cut(s, op); ok && name != "" && !strings.ContainsAny(name, "=!~") {
			return monitoring.Matcher{Name: name, Value: value, IsRegex: strings.HasSuffix(op, "~"), IsEqual: !strings.HasPrefix(op, "!")}, nil
		}
	}
	return monitoring.Matcher{}, fmt.Errorf("matcher %q: want LABEL=VALUE, LABEL!=VALUE, LABEL=~REGEX or LABEL!~REGEX", s)
}

func matcherString(m monitoring.Matcher) string {
	op := "="
	switch {
	case m.IsRegex && m.IsEqual:
		op = "=~"
	case m.IsRegex:
		op = "!~"
	case !m.IsEqual:
		op = "!="
	}
	return m.Name + op + fmt.Sprintf("%q", m.Value)
}
