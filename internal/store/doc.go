// Package store keeps panther-scim's durable record in a bbolt file: user and group
// records, their secondary indexes and cross-references, pending intents and the audit
// trail. It implements provision.Store; only this package imports bbolt.
//
// # File layout (schema version 3)
//
// Every top-level bucket and what its keys and values are:
//
//	meta                  "schema" -> uint64 BE; "count/users", "count/groups", "count/intents" -> uint64 BE;
//	                      "probe" -> last Probe time (decimal nanos)
//	users                 id -> header (userName, active, Panther id) ++ JSON provision.User, zstd-compressed
//	                      with a fixed dictionary (codec.go)
//	groups                id -> JSON provision.Group (Members in order)
//	idx/user/userName     lower(userName) -> id                 unique
//	idx/user/email        lower(email) -> id                    unique, empty not indexed
//	idx/user/pantherId    Panther id -> id                      unique, empty not indexed
//	idx/user/externalId   externalId "\x00" id -> nil           not unique, empty not indexed
//	idx/group/displayName lower(displayName) -> id              unique
//	idx/group/externalId  externalId "\x00" id -> nil           not unique, empty not indexed
//	members               userID "\x00" groupID -> nil          the reverse of Group.Members
//	intents               userID -> JSON provision.Intent
//	audit                 (time nanos, sign-flipped) BE ++ sequence BE -> JSON provision.AuditEntry
//
// Record and index change in the same transaction, and the counters in meta change with
// them, so counts are O(1). Ids may not be empty or contain a NUL byte: NUL separates
// the parts of composite keys.
//
// Schema history: 1, every value JSON; 2, user records compressed; 3, a plain state
// header before each compressed user record. Each migration runs at open: every user is
// rewritten once, in transactions of a thousand, and a rewrite cut short is finished by
// the next open. A file of a newer schema than the build's is refused, so an older
// release never misreads a record.
package store
