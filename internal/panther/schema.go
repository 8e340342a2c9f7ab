package panther

import _ "embed"

//go:generate go tool genqlient

// Schema is the users-and-roles subset of Panther's GraphQL schema (schema.graphql) that the
// generated client is built from. internal/pantherfake serves this same text.
//
//go:embed schema.graphql
var Schema string

// Operations is operations.graphql: every operation the client sends, as genqlient read them.
// CheckOperations validates them against Panther's live schema.
//
//go:embed operations.graphql
var Operations string
