"""OpenStack Cinder volume driver for the Strata storage cluster.

The driver class is ``strata_cinder.driver.StrataDriver``; every operation is carried out by
the ``strata-cinder`` program of the suite (see ``strata_cinder.helper``).
"""
