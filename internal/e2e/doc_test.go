// Package e2e holds the end-to-end tests: the real server on 127.0.0.1:0 with the
// Panther double (internal/pantherfake) behind it, driven over HTTP as Okta and Entra
// ID do, including Okta's own SCIM 2.0 SPEC test and recorded IdP requests.
package e2e
