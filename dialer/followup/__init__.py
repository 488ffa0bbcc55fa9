"""After the call: callbacks and the follow-up tasks whose deadlines the campaign promises.

``tasks`` holds the table and the writes made inside a use case's unit of
work; ``levels`` says, over a clock, whether each task met its deadline;
``board`` lists and counts them for supervisors, the API and the metrics.
"""
