"""Identity resolution: standardisers, person mentions, Splink linkage, golden profiles."""
