//go:build !linux

package yield

// osYield does nothing where panther-scim is not deployed (only Linux images are built):
// runtime.Gosched is all there is.
func osYield() error { return nil }
