package platform

import (
	"testing"

	"github.com/slipway-dev/slipway/internal/auth"
)

// Only a team's CI account passes through to the cluster, and only as
// its own team.
func TestOnlyATeamsCIAccountReachesTheCluster(t *testing.T) {
	for _, tc := range []struct {
		user auth.User
		want string
	}{
		{auth.User{Name: "ci-dev1", Push: []string{"dev1/"}}, "dev1"},
		{auth.User{Name: "dev1", Push: []string{"dev1/"}}, ""},                 // the team's person
		{auth.User{Name: "ci-dev1", Push: []string{"dev2/"}}, ""},              // named for one team, pushing for another
		{auth.User{Name: "ci-dev1", Push: []string{"dev1/", "dev2/"}}, ""},     // more than one team
		{auth.User{Name: "ci-dev1", Admin: true, Push: []string{"dev1/"}}, ""}, // an admin is not a CI account
		{auth.User{Name: "admin", Admin: true}, ""},                            // ops
		{auth.User{Name: "ci-", Push: []string{"/"}}, ""},                      // no team at all
		{auth.User{Name: "ci-Dev1", Push: []string{"Dev1/"}}, ""},              // not a team's name
	} {
		if got := ciAccountTeam(&tc.user); got != tc.want {
			t.Errorf("%s pushing %v (admin %v): team %q, want %q", tc.user.Name, tc.user.Push, tc.user.Admin, got, tc.want)
		}
	}
}
