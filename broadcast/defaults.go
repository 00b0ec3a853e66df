package broadcast

import "cmp"

// SetDefault gives a configuration field its default when it is unset: empty, zero, or a
// negative number. Every configuration of the programme (here and in signaling/programme)
// applies its defaults with it, so that "unset" means the same everywhere.
func SetDefault[T cmp.Ordered](field *T, def T) {
	var unset T
	if *field <= unset {
		*field = def
	}
}
