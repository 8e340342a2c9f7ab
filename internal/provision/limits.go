package provision

// Limits on the values that become store keys or go to Panther. The store indexes
// userName, externalId, the Panther email and a group's displayName and externalId
// under keys of at most 32 KiB (bbolt's limit), and a user's Panther email and names
// travel in every invite and update; a longer value used to fail deep in the write
// (a 500) or in Panther. Checked up front, each is a 400 naming the attribute and the
// limit. The limits are far above what identity providers allow: Okta logins and
// group names are at most a few hundred characters, Entra's userPrincipalName 113
// and a group's displayName 256, and an email address at most 254 bytes (RFC 5321).
const (
	// MaxUserNameLength is the longest userName, in bytes.
	MaxUserNameLength = 1024
	// MaxExternalIDLength is the longest externalId of a user or group, in bytes.
	MaxExternalIDLength = 1024
	// MaxDisplayNameLength is the longest group displayName, in bytes.
	MaxDisplayNameLength = 1024
	// MaxMemberIDLength is the longest member value of a group, in bytes (the ids the
	// server mints are 36).
	MaxMemberIDLength = 1024
	// MaxNameLength is the longest given or family name a user gets in Panther, in bytes.
	MaxNameLength = 1024
	// MaxEmailLength is the longest email address, in bytes (RFC 5321).
	MaxEmailLength = 254
)

// checkUserFields checks the lengths of what a user's fields make into store keys
// and Panther values; a CodeInvalid *Error names the first too long. Fields the
// identity rules cannot use are left for DeriveIdentity to report.
func checkUserFields(f UserFields) error {
	if err := checkLength("userName", f.UserName, MaxUserNameLength); err != nil {
		return err
	}
	if err := checkLength("externalId", f.ExternalID, MaxExternalIDLength); err != nil {
		return err
	}
	id, err := DeriveIdentity(f.UserName, f.Attributes)
	if err != nil {
		return nil
	}
	if len(id.Email) > MaxEmailLength {
		return newError(CodeInvalid, nil, "the email address is %d bytes long; an address has at most %d bytes (RFC 5321)",
			len(id.Email), MaxEmailLength)
	}
	if len(id.GivenName) > MaxNameLength {
		return newError(CodeInvalid, nil, "the given name Panther would get is %d bytes long; the limit is %d bytes: shorten name.givenName (or name.formatted, displayName)",
			len(id.GivenName), MaxNameLength)
	}
	if len(id.FamilyName) > MaxNameLength {
		return newError(CodeInvalid, nil, "the family name Panther would get is %d bytes long; the limit is %d bytes: shorten name.familyName (or name.formatted, displayName)",
			len(id.FamilyName), MaxNameLength)
	}
	return nil
}

// checkGroupFields checks the lengths of what a group's fields make into store keys.
func checkGroupFields(f GroupFields) error {
	if err := checkLength("displayName", f.DisplayName, MaxDisplayNameLength); err != nil {
		return err
	}
	if err := checkLength("externalId", f.ExternalID, MaxExternalIDLength); err != nil {
		return err
	}
	for _, m := range f.Members {
		if err := checkLength("a member's value", m, MaxMemberIDLength); err != nil {
			return err
		}
	}
	return nil
}

func checkLength(name, v string, limit int) error {
	if len(v) > limit {
		return newError(CodeInvalid, nil, "%s is %d bytes long; the limit is %d bytes", name, len(v), limit)
	}
	return nil
}
