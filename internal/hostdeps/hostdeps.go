// Package hostdeps makes sure the host programs Slipway drives are
// installed: with apt-get when running as root on Debian or Ubuntu, and
// otherwise by telling the user exactly what to install.
package hostdeps

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
)

// Requirement is a program and the Debian package that ships it.
type Requirement struct {
	Command string
	Package string
}

// Cluster lists what the local cluster runs besides its own programs.
var Cluster = []Requirement{
	{"containerd", "containerd"},
	{"runc", "runc"},
	{"ip", "iproute2"},
	{"iptables", "iptables"},
	{"conntrack", "conntrack"},
	{"/usr/lib/cni/bridge", "containernetworking-plugins"},
	{"/usr/lib/cni/host-local", "containernetworking-plugins"},
	{"/usr/lib/cni/portmap", "containernetworking-plugins"},
	// The CI image's root filesystem (pipeline jobs run in pods).
	{"mmdebstrap", "mmdebstrap"},
}

// Ensure installs what is missing, or says what to install.
func Ensure(reqs []Requirement, progress io.Writer) error {
	missing := map[string]bool{}
	for _, r := range reqs {
		if strings.HasPrefix(r.Command, "/") {
			if _, err := os.Stat(r.Command); err == nil {
				continue
			}
		} else if _, err := exec.LookPath(r.Command); err == nil {
			continue
		}
		missing[r.Package] = true
	}
	if len(missing) == 0 {
		return nil
	}
	pkgs := make([]string, 0, len(missing))
	for p := range missing {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	_, aptErr := exec.LookPath("apt-get")
	if os.Geteuid() != 0 || aptErr != nil {
		return fmt.Errorf("missing programs: install the packages %s (on Debian or Ubuntu: apt-get install %s) and run again", strings.Join(pkgs, ", "), strings.Join(pkgs, " "))
	}
	fmt.Fprintf(progress, "installing %s with apt-get\n", strings.Join(pkgs, " "))
	install := func() error {
		cmd := exec.Command("apt-get", append([]string{"install", "-y", "-q", "--no-install-recommends"}, pkgs...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get install %s: %v\n%s", strings.Join(pkgs, " "), err, out.String())
		}
		return nil
	}
	if err := install(); err != nil {
		// A fresh machine may have no package lists yet.
		if out, uerr := exec.Command("apt-get", "update", "-q").CombinedOutput(); uerr != nil {
			return fmt.Errorf("apt-get update: %v\n%s", uerr, out)
		}
		return install()
	}
	return nil
}
