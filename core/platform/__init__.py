"""The ground floor: the store, paths, roles and sign-in, settings, escaping, heavy-work slots and worker processes."""
