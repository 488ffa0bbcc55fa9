"""The field salespeople's shared calendar: who works when and where, travel between visits, free slots.

``model`` (salespeople, their hours and areas), ``travel`` (time between two
places) and ``slots`` (booking checks and the search of free slots) are pure:
no I/O, every rule testable without a database.  ``tables`` holds the rows,
``invite`` writes the iCalendar invitations; the use cases are in
``dialer.service.calendar``.
"""
