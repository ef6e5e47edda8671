/**
 * setupFiles of the jest `citus` project: test files that serve both engines (the store suite)
 * read CHAT_TEST_ENGINE to make their databases on the run's Citus cluster instead.
 */
process.env['CHAT_TEST_ENGINE'] = 'citus';
