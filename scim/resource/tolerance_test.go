package resource

import (
	"encoding/json"
	"slices"
	"testing"

	scimerrors "github.com/elimity-com/scim/errors"
)

const (
	coreUserURN  = "urn:ietf:params:scim:schemas:core:2.0:User"
	coreGroupURN = "urn:ietf:params:scim:schemas:core:2.0:Group"
	entURN       = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	customURN    = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"
)

// Each form of a POST/PUT body an IdP sends becomes the plain form the validator reads, and the attributes the
// schema does not declare are taken out and named.
func TestNormalizeDocument(t *testing.T) {
	tests := []struct {
		name    string
		rs      Schema
		in      string
		want    string
		unknown []string
		err     string // a fragment of the 400 invalidSyntax detail
	}{
		{
			name: "plain body unchanged", rs: UserSchema,
			in:   `{"schemas":["` + coreUserURN + `"],"userName":"a","name":{"givenName":"A"},"emails":[{"value":"a@x.io","primary":true}],"groups":[{"value":"g"}],"meta":{"x":1},"id":"i"}`,
			want: `{"schemas":["` + coreUserURN + `"],"userName":"a","name":{"givenName":"A"},"emails":[{"value":"a@x.io","primary":true}],"groups":[{"value":"g"}],"meta":{"x":1},"id":"i"}`,
		},
		{
			name: "core attributes keyed by the core URN (RFC 7644 §3.10)", rs: UserSchema,
			in:   `{"schemas":["` + coreUserURN + `"],"` + coreUserURN + `":{"userName":"a","name":{"familyName":"F"},"active":true}}`,
			want: `{"schemas":["` + coreUserURN + `"],"userName":"a","name":{"familyName":"F"},"active":true}`,
		},
		{
			name: "mixed: some keys qualified, some not, the URN in another case", rs: UserSchema,
			in:   `{"schemas":["` + coreUserURN + `"],"userName":"a","URN:IETF:params:scim:schemas:core:2.0:user":{"name":{"familyName":"F"}},"` + coreUserURN + `:displayName":"D"}`,
			want: `{"schemas":["` + coreUserURN + `"],"userName":"a","name":{"familyName":"F"},"displayName":"D"}`,
		},
		{
			name: "the same value both ways is no conflict", rs: UserSchema,
			in:   `{"userName":"a","` + coreUserURN + `":{"USERNAME":"a"}}`,
			want: `{"userName":"a"}`,
		},
		{
			name: "conflict between qualified and unqualified", rs: UserSchema,
			in:  `{"userName":"a","` + coreUserURN + `":{"userName":"b"}}`,
			err: `attribute "userName" is given twice with different values`,
		},
		{
			name: "conflict between two qualified forms", rs: UserSchema,
			in:  `{"` + coreUserURN + `":{"title":"x"},"` + coreUserURN + `:title":"y"}`,
			err: `"title"`,
		},
		{
			name: "core container that is not an object", rs: UserSchema,
			in:  `{"` + coreUserURN + `":"a"}`,
			err: "must be an object",
		},
		{
			name: "Group core attributes keyed by the core URN", rs: GroupSchema,
			in:   `{"schemas":["` + coreGroupURN + `"],"` + coreGroupURN + `":{"displayName":"G","members":[{"value":"u1","display":"U"}]},"externalId":"e"}`,
			want: `{"schemas":["` + coreGroupURN + `"],"displayName":"G","members":[{"value":"u1","display":"U"}],"externalId":"e"}`,
		},
		{
			name: "extension attributes: qualified key, bare key, URN in another case", rs: UserSchema,
			in:   `{"userName":"a","` + entURN + `:employeeNumber":"7","costCenter":"c","URN:ietf:params:scim:schemas:extension:ENTERPRISE:2.0:User":{"department":"d"}}`,
			want: `{"userName":"a","` + entURN + `":{"employeeNumber":"7","costCenter":"c","department":"d"}}`,
		},
		{
			name: "extension conflict", rs: UserSchema,
			in:  `{"userName":"a","` + entURN + `:employeeNumber":"7","` + entURN + `":{"employeeNumber":"8"}}`,
			err: `"employeeNumber" is given twice`,
		},
		{
			name: "unknown attributes: a misspelling, a custom extension, an unknown extension attribute", rs: UserSchema,
			in: `{"userName":"a","adreses":[{"street":"x"}],"` + customURN + `":{"CustomAttribute":"v","Other":1},` +
				`"` + entURN + `":{"employeeNumber":"7","badge":"b"},"urn:example:flat":"v"}`,
			want:    `{"userName":"a","` + entURN + `":{"employeeNumber":"7"}}`,
			unknown: []string{"adreses", "urn:example:flat", customURN + ":CustomAttribute", customURN + ":Other", entURN + ":badge"},
		},
		{
			name: "unknown sub-attributes, single and multi-valued, core and extension", rs: UserSchema,
			in: `{"userName":"a","name":{"givenName":"A","middle_name":"M"},"emails":[{"value":"a@x.io","label":"l"},{"value":"b@x.io"}],` +
				`"` + entURN + `":{"manager":{"value":"m","email":"e"}}}`,
			want:    `{"userName":"a","name":{"givenName":"A"},"emails":[{"value":"a@x.io"},{"value":"b@x.io"}],"` + entURN + `":{"manager":{"value":"m"}}}`,
			unknown: []string{"emails.label", "name.middle_name", entURN + ":manager.email"},
		},
		{
			name: "the same unknown name in any case is named once", rs: UserSchema,
			in:      `{"userName":"a","emails":[{"value":"a@x.io","Label":"l"},{"value":"b@x.io","label":"m"}]}`,
			want:    `{"userName":"a","emails":[{"value":"a@x.io"},{"value":"b@x.io"}]}`,
			unknown: []string{"emails.Label"},
		},
		{
			name: "Group: unknown attribute and member sub-attribute", rs: GroupSchema,
			in:      `{"displayName":"G","owner":"o","members":[{"value":"u","ref":"x"}]}`,
			want:    `{"displayName":"G","members":[{"value":"u"}]}`,
			unknown: []string{"members.ref", "owner"},
		},
		{
			name: "a User attribute in a Group is unknown", rs: GroupSchema,
			in:      `{"displayName":"G","userName":"u"}`,
			want:    `{"displayName":"G"}`,
			unknown: []string{"userName"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := decodeResource(t, tt.in)
			got, err := tt.rs.NormalizeDocument(doc)
			if tt.err != "" {
				wantScimError(t, err, scimerrors.ScimTypeInvalidSyntax, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if mustJSON(t, doc) != mustJSON(t, decodeResource(t, tt.want)) {
				t.Errorf("document\n got %s\nwant %s", mustJSON(t, doc), mustJSON(t, decodeResource(t, tt.want)))
			}
			if !slices.Equal(got.Unknown, tt.unknown) {
				t.Errorf("unknown = %q, want %q", got.Unknown, tt.unknown)
			}
		})
	}
}

// Each PATCH form: what the operations become, what is reported unknown, and that the library's validator then
// accepts the body and the applier gives the expected resource.
func TestNormalizePatchTolerance(t *testing.T) {
	const user = `{"schemas":["` + coreUserURN + `"],"id":"u","userName":"a","name":{"givenName":"A","familyName":"F"},` +
		`"emails":[{"value":"a@x.io","type":"work","primary":true}]}`
	const group = `{"schemas":["` + coreGroupURN + `"],"id":"g","displayName":"G","members":[{"value":"u1"}]}`
	tests := []struct {
		name     string
		rs       Schema
		res, ops string
		wantOps  string // the operations after normalisation
		unknown  []string
		want     string // the resource after the PATCH
		err      string // a fragment of a 400 invalidSyntax detail
	}{
		{
			name: "unknown path dropped, the others applied", rs: UserSchema, res: user,
			ops:     `[{"op":"replace","path":"adreses","value":"x"},{"op":"replace","path":"title","value":"T"}]`,
			wantOps: `[{"op":"replace","path":"title","value":"T"}]`,
			unknown: []string{"adreses"},
			want:    `{"schemas":["` + coreUserURN + `"],"id":"u","userName":"a","title":"T","name":{"givenName":"A","familyName":"F"},"emails":[{"value":"a@x.io","type":"work","primary":true}]}`,
		},
		{
			name: "Entra's custom extension attribute", rs: UserSchema, res: user,
			ops:     `[{"op":"Add","path":"` + customURN + `:CustomAttribute","value":"v"},{"op":"Replace","path":"displayName","value":"D"}]`,
			wantOps: `[{"op":"Replace","path":"displayName","value":"D"}]`,
			unknown: []string{customURN + ":CustomAttribute"},
			want:    `{"schemas":["` + coreUserURN + `"],"id":"u","userName":"a","displayName":"D","name":{"givenName":"A","familyName":"F"},"emails":[{"value":"a@x.io","type":"work","primary":true}]}`,
		},
		{
			name: "every operation unknown: a PATCH that changes nothing", rs: UserSchema, res: user,
			ops:     `[{"op":"remove","path":"adreses"},{"op":"add","path":"name.middle_name","value":"M"},{"op":"replace","path":"emails[type eq \"work\"].label","value":"l"}]`,
			wantOps: `[{"op":"replace","value":{}}]`,
			unknown: []string{"adreses", "emails.label", "name.middle_name"},
			want:    user,
		},
		{
			name: "pathless value: unknown keys out, core container merged, bare extension attribute qualified", rs: UserSchema, res: user,
			ops: `[{"op":"replace","value":{"id":"u","adreses":"x","` + coreUserURN + `":{"title":"T"},"employeeNumber":"7",` +
				`"` + entURN + `":{"department":"d","badge":"b"},"name":{"familyName":"G","middle_name":"M"}}}]`,
			wantOps: `[{"op":"replace","value":{"id":"u","title":"T","` + entURN + `:employeeNumber":"7","` + entURN + `":{"department":"d"},"name":{"familyName":"G"}}}]`,
			unknown: []string{"adreses", "name.middle_name", entURN + ":badge"},
			want: `{"schemas":["` + coreUserURN + `","` + entURN + `"],"id":"u","userName":"a","title":"T","name":{"givenName":"A","familyName":"G"},` +
				`"emails":[{"value":"a@x.io","type":"work","primary":true}],"` + entURN + `":{"employeeNumber":"7","department":"d"}}`,
		},
		{
			name: "pathless conflict between the core container and a plain key", rs: UserSchema, res: user,
			ops: `[{"op":"replace","value":{"title":"T","` + coreUserURN + `":{"title":"U"}}}]`,
			err: `attribute "title" is given twice with different values`,
		},
		{
			name: "path that is the core URN: a pathless operation", rs: UserSchema, res: user,
			ops:     `[{"op":"replace","path":"` + coreUserURN + `","value":{"title":"T","nick":"n"}}]`,
			wantOps: `[{"op":"replace","value":{"title":"T"}}]`,
			unknown: []string{"nick"},
			want:    `{"schemas":["` + coreUserURN + `"],"id":"u","userName":"a","title":"T","name":{"givenName":"A","familyName":"F"},"emails":[{"value":"a@x.io","type":"work","primary":true}]}`,
		},
		{
			name: "core-qualified path and bare extension path", rs: UserSchema, res: user,
			ops:     `[{"op":"replace","path":"` + coreUserURN + `:name.givenName","value":"B"},{"op":"add","path":"costCenter","value":"c"}]`,
			wantOps: `[{"op":"replace","path":"name.givenName","value":"B"},{"op":"add","path":"` + entURN + `:costCenter","value":"c"}]`,
			want: `{"schemas":["` + coreUserURN + `","` + entURN + `"],"id":"u","userName":"a","name":{"givenName":"B","familyName":"F"},` +
				`"emails":[{"value":"a@x.io","type":"work","primary":true}],"` + entURN + `":{"costCenter":"c"}}`,
		},
		{
			name: "unknown sub-attributes of a value", rs: UserSchema, res: user,
			ops:     `[{"op":"add","path":"emails","value":[{"value":"b@x.io","type":"home","label":"l"}]},{"op":"replace","path":"name","value":{"givenName":"C","middle":"M"}}]`,
			wantOps: `[{"op":"add","path":"emails","value":[{"value":"b@x.io","type":"home"}]},{"op":"replace","path":"name","value":{"givenName":"C"}}]`,
			unknown: []string{"emails.label", "name.middle"},
			want: `{"schemas":["` + coreUserURN + `"],"id":"u","userName":"a","name":{"givenName":"C","familyName":"F"},` +
				`"emails":[{"value":"a@x.io","type":"work","primary":true},{"value":"b@x.io","type":"home"}]}`,
		},
		{
			name: "extension container path with an unknown attribute", rs: UserSchema, res: user,
			ops:     `[{"op":"add","path":"` + entURN + `","value":{"division":"v","badge":"b"}}]`,
			wantOps: `[{"op":"add","value":{"` + entURN + `":{"division":"v"}}}]`,
			unknown: []string{entURN + ":badge"},
			want: `{"schemas":["` + coreUserURN + `","` + entURN + `"],"id":"u","userName":"a","name":{"givenName":"A","familyName":"F"},` +
				`"emails":[{"value":"a@x.io","type":"work","primary":true}],"` + entURN + `":{"division":"v"}}`,
		},
		{
			name: "Group: unknown attribute beside a member add", rs: GroupSchema, res: group,
			ops:     `[{"op":"add","path":"members","value":[{"value":"u2","display":"U2","ref":"r"}]},{"op":"replace","path":"owner","value":"o"}]`,
			wantOps: `[{"op":"add","path":"members","value":[{"value":"u2","display":"U2"}]}]`,
			unknown: []string{"members.ref", "owner"},
			want:    `{"schemas":["` + coreGroupURN + `"],"id":"g","displayName":"G","members":[{"value":"u1"},{"value":"u2","display":"U2"}]}`,
		},
		{
			name: "Group core container in a pathless value", rs: GroupSchema, res: group,
			ops:     `[{"op":"replace","value":{"` + coreGroupURN + `":{"displayName":"H"}}}]`,
			wantOps: `[{"op":"replace","value":{"displayName":"H"}}]`,
			want:    `{"schemas":["` + coreGroupURN + `"],"id":"g","displayName":"H","members":[{"value":"u1"}]}`,
		},
		{
			name: "bare values in a path's value filter", rs: UserSchema, res: user,
			ops:     `[{"op":"replace","path":"emails[type eq work].value","value":"c@x.io"}]`,
			wantOps: `[{"op":"replace","path":"emails[type eq \"work\"].value","value":"c@x.io"}]`,
			want:    `{"schemas":["` + coreUserURN + `"],"id":"u","userName":"a","name":{"givenName":"A","familyName":"F"},"emails":[{"value":"c@x.io","type":"work","primary":true}]}`,
		},
		{
			name: "bare member id in Okta's remove", rs: GroupSchema, res: group,
			ops:     `[{"op":"remove","path":"members[value eq u1]"}]`,
			wantOps: `[{"op":"remove","path":"members","value":[{"value":"u1"}]}]`,
			want:    `{"schemas":["` + coreGroupURN + `"],"id":"g","displayName":"G"}`,
		},
		{
			name: "known paths unchanged", rs: UserSchema, res: user,
			ops:     `[{"op":"replace","path":"emails[type eq \"work\"].value","value":"c@x.io"}]`,
			wantOps: `[{"op":"replace","path":"emails[type eq \"work\"].value","value":"c@x.io"}]`,
			want:    `{"schemas":["` + coreUserURN + `"],"id":"u","userName":"a","name":{"givenName":"A","familyName":"F"},"emails":[{"value":"c@x.io","type":"work","primary":true}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, tol, err := NormalizePatchBody(tt.rs, []byte(patchBody(tt.ops)))
			if tt.err != "" {
				wantScimError(t, err, scimerrors.ScimTypeInvalidSyntax, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var doc struct{ Operations []any }
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatal(err)
			}
			var wantOps []any
			if err := json.Unmarshal([]byte(tt.wantOps), &wantOps); err != nil {
				t.Fatal(err)
			}
			if mustJSON(t, doc.Operations) != mustJSON(t, wantOps) {
				t.Errorf("operations\n got %s\nwant %s", mustJSON(t, doc.Operations), mustJSON(t, wantOps))
			}
			if !slices.Equal(tol.Unknown, tt.unknown) {
				t.Errorf("unknown = %q, want %q", tol.Unknown, tt.unknown)
			}
			got, err := tt.rs.ApplyPatch(decodeResource(t, tt.res), elimityPatchOps(t, tt.rs, string(body)))
			if err != nil {
				t.Fatal(err)
			}
			if mustJSON(t, got) != mustJSON(t, decodeResource(t, tt.want)) {
				t.Errorf("resource\n got %s\nwant %s", mustJSON(t, got), mustJSON(t, decodeResource(t, tt.want)))
			}
		})
	}
}
