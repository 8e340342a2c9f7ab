// Package scim is panther-scim's SCIM 2.0 surface (RFC 7643 / RFC 7644).
//
// github.com/elimity-com/scim routes requests, validates bodies against the schemas
// and parses PATCH operations and filters. This package does what the library leaves
// to its users: it evaluates filters against the store (indexes for userName,
// externalId, emails, displayName and members; a compiled scan otherwise), pages with a
// stable order, applies PATCH operations (every form Okta and Entra send), projects
// attributes/excludedAttributes, sorts, honours If-Match / If-None-Match, serves a
// ServiceProviderConfig that tells the truth, rewrites known IdP quirks, and turns
// every error into an RFC 7644 §3.12 body in one place (WriteError).
package scim
