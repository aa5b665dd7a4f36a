"""The only package that imports socketio: namespaces, rooms, listeners."""
