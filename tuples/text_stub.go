package tuples

// String returns the text form `type:id`.
func (o ObjectRef) String() string { return o.Type + ":" + o.ID }

// String returns the text form `type:id` or `type:id#relation`.
func (s SubjectRef) String() string {
	if s.Relation == "" {
		return s.Object.String()
	}
	return s.Object.String() + "#" + s.Relation
}

// String returns the text form `type:id#relation@subject`.
func (t Tuple) String() string {
	return t.Object.String() + "#" + t.Relation + "@" + t.Subject.String()
}
