"""The school directory: schools, classes, enrolments, guardians, teachings, the timetable."""
