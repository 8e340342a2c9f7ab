// Package provision holds panther-scim's rules: who a SCIM user is in Panther (the
// identity rules), which role their groups give them (through mappings), what
// deactivation means, and how a change reaches Panther without ever being lost.
//
// It declares the domain types (User, Group, Intent, AuditEntry), the Store it needs
// (bbolt in internal/store) and the Panther it needs (internal/panther), and depends on
// nothing else but mappings.
//
// Durability: a change is validated, then written to the store together with an
// Intent in one transaction; Panther is called; the intent is cleared when Panther
// matches the record. SyncUser always applies the latest record (so concurrent changes
// converge in any order), serialised per user and per email, and clears an intent only
// if its generation did not change meanwhile. Intents left by a crash are replayed at
// start-up as uncertain: the email is looked up before any invite, so nobody is invited
// twice. A change refused there (by an ownership rule, or by Panther itself) is put
// back, not kept: the intent holds the record as it was before its first unapplied
// change (Intent.Revert), and the sync that meets the refusal restores it in the
// transaction that ends the intent. Reconcile compares the store with Panther and repairs drift, touching only
// users it manages and never a protected email.
package provision
