// The assignment solver lands here.
