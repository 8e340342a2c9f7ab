// Package scim is panther-scim's SCIM 2.0 HTTP edge (RFC 7643 / RFC 7644).
//
// github.com/elimity-com/scim routes requests, validates bodies against the schemas
// and parses PATCH operations and filters. This package does what the library leaves
// to its users, around the document engine of scim/resource: it bounds filters and
// paths before the library parses them, rewrites known IdP quirks, serves /Users and
// /Groups with one handler (writes through a Service, lists and references read from
// Records: indexes for userName, externalId, emails, displayName and members, a
// compiled scan otherwise, stable paging), projects attributes/excludedAttributes,
// honours If-Match / If-None-Match, serves a ServiceProviderConfig that tells the
// truth, and decides in one place (WriteError) what every error says.
package scim
