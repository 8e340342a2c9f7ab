// Package pantherfake is Panther's users-and-roles GraphQL API in memory, for tests,
// benchmarks, the demo and manual curl: an HTTP server at /public/graphql that behaves like
// Panther and can be made to fail like it.
//
// It serves panther.Schema, the very schema file the client is generated from, so the client
// and the fake cannot disagree about a field, an argument or a nullability.
//
// Engine. Requests are handled by a small runtime executor over github.com/vektah/gqlparser/v2:
// gqlparser loads the schema and parses and validates each query with the standard GraphQL
// validation rules (unknown field, wrong argument type, missing required argument are
// rejected as a real server rejects them), validator.VariableValues coerces the variables
// (missing required input fields, unknown input fields, bad enum values), and the executor in
// exec.go resolves the root fields and projects results onto the selection set (aliases,
// fragments and inline fragments, including on the Actor union, @skip/@include, __typename),
// writing the answer's JSON as it goes, into pooled pieces sent once the state lock is
// released: a listing of 100k users builds no value per field.
// gqlgen, the other choice, would generate a resolver layer from the same schema; it would
// add generated code and a generator to keep fresh for a schema of twelve root fields, and its
// typed models would make "behaves like Panther" (error codes, null propagation from failed
// non-null lookups) no easier. The runtime executor is a few hundred lines, has no generated
// code, and picks up schema changes without regeneration.
//
// Behaviour. Requests need X-API-Key (else HTTP 401 with an UNAUTHENTICATED error). The fake
// starts with Panther's default roles Admin (every permission), Analyst and AnalystReadOnly
// and no users. inviteUser checks the email (a plain address), non-empty names, a known role
// (by NAME, case-insensitive, or ID) and a free email (case-insensitive); users get a UUID,
// createdAt, status INVITED and enabled true. updateUser changes only the fields given,
// checked the same way. Lookups that miss (userById, userByEmail, roleById, roleByName,
// deleteUser) answer a GraphQL error with code NOT_FOUND and data null; duplicates answer
// ALREADY_EXISTS, bad input BAD_USER_INPUT, validation failures GRAPHQL_VALIDATION_FAILED
// (HTTP 200), unparsable documents GRAPHQL_PARSE_FAILED (HTTP 400). roleByName matches names
// case-insensitively; createRole rejects a duplicate name.
//
// Introspection. __schema and __type are answered from the served schema (introspect.go), as
// Panther answers them from its own, so `panther-scim check` can compare its operations with
// the fake's schema. Options.Schema (`fake-panther --schema FILE`) serves another schema than
// panther.Schema, to play a Panther whose API changed; Options.RefuseIntrospection
// (`--no-introspection`) plays one that turned introspection off (HTTP 400,
// GRAPHQL_VALIDATION_FAILED, Apollo Server's wording). Options.TokenPermissions plays an API
// token without Read User Info (UserRead) or Manage Users (UserModify): the fields that need
// them fail with FORBIDDEN (Panther's wording for this is not documented).
//
// Faults, settable in Options, with setters while running, and from Run's flags: fixed and
// jittered latency, a rate of 5xx answers, a rate of 429 answers with Retry-After, FailNext
// (the next N calls of an operation answer a status), DropNext (apply the mutation, then close
// the connection without answering) and Down (answer 503 to everything). A seeded fake makes
// the same random choices and the same ids in the same order.
//
// HTTP log source. POST /http/<id> is a Panther HTTP log source: it checks the
// configured authentication as Panther does (a shared secret in a header, the hex
// HMAC of the body in a header, or a bearer token; anything else is 401), refuses a
// body over 1 MB (413), and keeps the JSON events it accepted (SourceEvents,
// SourceRequests). The faults above apply to it too (its op is HTTPSourceOp), and
// HTTPSourceDown takes it alone down.
//
// Observation: Calls (every request with its operation, variables, status and time), Count,
// MaxInFlight; and state helpers (AddUser, SetUserRole, SetUserNames, RemoveUser, Users,
// UserByEmail, AddRole, Roles) to change Panther behind the bridge's back.
package pantherfake
