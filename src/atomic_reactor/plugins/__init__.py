"""atomic-reactor's built-in plugins, one module each.

They are registered in the ``atomic_reactor.plugins`` entry-point group, exactly
like third-party plugins; nothing here is imported until a build asks for it.
"""
