"""Before the trip: entry rules by citizenship, extras a clinic offers, the all-in estimate, visa-refusal claims.

The waitlist for scarce machines is part of the engine (bookings.engine.waitlist)."""
