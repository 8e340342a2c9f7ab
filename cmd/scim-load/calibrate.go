package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/panther-scim/panther-scim/internal/panther"
	"github.com/panther-scim/panther-scim/internal/pantherfake"
	"github.com/panther-scim/panther-scim/internal/provision"
)

// runCalibrate makes --users updateUser calls (at least 1,000) straight through a
// Panther client configured as the bridge's, from many goroutines, and records the
// phase like the others: its ratio is the floor the harness itself sets.
func (m *Main) runCalibrate(ctx context.Context) error {
	if m.fake == nil {
		return errors.New("calibrate needs --self")
	}
	c := m.Config
	client, err := panther.New(panther.Config{URL: m.fakeURL, Token: pantherfake.DefaultAPIKey,
		MaxConcurrent: c.PantherConcurrency, RatePerSecond: c.PantherRate})
	if err != nil {
		return err
	}
	const users = 64
	ids := make([]string, users)
	for i := range ids {
		pu, err := m.fake.AddUser(fmt.Sprintf("calibrate%d@example.com", i), "Cali", "Brate", "AnalystReadOnly")
		if err != nil {
			return err
		}
		ids[i] = pu.ID
	}
	roles := map[string]string{}
	for _, r := range m.fake.Roles() {
		roles[r.Name] = r.ID
	}
	n := max(c.Users, 1000)
	p := m.begin("calibrate")
	err = parallel(ctx, 4*c.PantherConcurrency, n, func(ctx context.Context, i int) error {
		role := roles[loadRoles[(i/users)%2]]
		_, err := client.UpdateUser(ctx, provision.UpdateInput{ID: ids[i%users], Role: &provision.RoleRef{ByID: true, Value: role}})
		return err
	})
	if err != nil {
		return err
	}
	m.report.Phases = append(m.report.Phases, m.end(ctx, p, map[string]int{"updateUser": n}))
	return nil
}
