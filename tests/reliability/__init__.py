"""A server inside the user's kernel must not be a way in, and no request may take it down."""
