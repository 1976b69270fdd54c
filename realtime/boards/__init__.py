"""Live classroom boards: the teacher's whiteboard, followed and drawn on by the class."""
