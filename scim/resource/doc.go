// Package resource is panther-scim's SCIM document engine (RFC 7643 / RFC 7644): pure
// functions over SCIM resources as JSON objects (map[string]any), with no HTTP server,
// store or provisioning rules behind them.
//
// A Schema (UserSchema, GroupSchema) resolves attribute paths in any case, with or
// without their URN, and carries what the rest needs: filter evaluation
// (ParseFilter, Schema.Match, Schema.CompileFilter), PATCH application
// (Schema.ApplyPatch, with the quirks Okta and Entra ID send rewritten by
// NormalizePatchBody), projection (ParseAttrList, Schema.Project), sorting
// (Schema.Less, ParseSortOrder) and the limits on what one request may ask
// (CheckFilter, CheckPatchSize, Schema.CheckValues). Errors are 400 ScimErrors from
// github.com/elimity-com/scim/errors whose detail says what to fix (BadRequest).
package resource
