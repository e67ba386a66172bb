"""npsloop console: the web application where customer-success people sign in with the
company's identity provider and work their cases, through followup's and scoring's APIs."""
