"""The dashboard's browser tests: a package, so that their browser lives only while they run.

Playwright's sync API keeps an asyncio loop running on the main thread while it is
started; a later test of the same pytest run that calls ``asyncio.run()`` there would
fail. A package-scoped fixture ends with the package, which a plain directory is not.
"""
