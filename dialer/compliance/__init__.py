"""The compliance gate every originate passes: DNC, consent, calling windows, contact pressure."""
