"""Help requests: a trainee in a call presses "I need help"; his curator's dashboards (or, when the
curator has none open, the admins') show it at once; it ends when someone joins the call, the
trainee cancels, or the call ends. `helprequests.live` runs it inside the bridge."""
