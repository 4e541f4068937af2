"""The stories of the broker, each told top to bottom: signing in (`flow`: VNeID or password,
one post-login step per channel; `password`: the password method and the proof by password)
and signing out (`logout`)."""
