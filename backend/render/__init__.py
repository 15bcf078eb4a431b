"""Rendering library motions on randomised mannequins with headless Blender (issue 14): clip plans
(:mod:`.mannequin`), the bpy script and its runner (:mod:`.render_script`, :mod:`.blender`), the text-video-motion
dataset builder (:mod:`.dataset`, Ray or a process pool, resumable) and its retrieval metrics (:mod:`.evaluate`)."""
