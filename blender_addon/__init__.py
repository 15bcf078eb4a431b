"""Baton for Blender: conduct music, search a motion library and retarget motions onto any armature.

The add-on is a thin client: a local (or LAN) Baton backend (``baton serve``) runs the models; this package sends it
requests over HTTP from worker threads and applies the answers as keyframed Actions on Blender's main thread.
Sidebar: 3D View > N panel > Baton.

Registration is symmetric: :func:`register` adds :data:`classes`, ``Scene.baton`` and the job-report listener;
:func:`unregister` cancels running jobs, removes the timer, stops a backend it started, frees the result thumbnails'
preview icons, and removes everything in reverse order, so enable -> disable -> enable leaves nothing stale.

The Blender modules load only when ``bpy`` is already imported (always so when Blender loads an add-on). Anywhere
else (the backend, plain-Python tests and scripts importing ``blender_addon.wire`` / ``client`` / ``mapping``)
importing the package pulls in neither ``bpy`` nor any Blender module.
"""

from __future__ import annotations

import sys

if "bpy" in sys.modules:
    import bpy

    from . import jobs, operators, operators_rig, panels, pipelines, preferences, properties, server, thumbnails

    classes = (
        *properties.CLASSES,
        preferences.BATON_AddonPreferences,
        *operators.CLASSES,
        *operators_rig.CLASSES,
        *panels.CLASSES,
    )

    def register() -> None:
        for cls in classes:
            bpy.utils.register_class(cls)
        bpy.types.Scene.baton = bpy.props.PointerProperty(type=properties.BATON_SceneProperties)
        jobs.runner().listeners.append(pipelines.report_finished)

    def unregister() -> None:
        jobs.shutdown()
        server.shutdown()
        thumbnails.clear()
        del bpy.types.Scene.baton
        for cls in reversed(classes):
            bpy.utils.unregister_class(cls)
