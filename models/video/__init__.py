"""Video as a query: the pose front end (:mod:`.pose`: video checks, MediaPipe Pose in ``.venv-pose``, lifting the
landmarks to 3D Motions that the retrieval model's motion encoder embeds)."""
