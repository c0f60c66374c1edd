"""The calibration room: sampling plans (`sampling`), calibration runs (`runs`), measured
copies for the transfer model (`transfers`), the SQLite measurement store (`store`) and the
reference data shipped in `data/` (`reference_data`). It measures through `hardware.measure`
and imports nothing of execution."""
