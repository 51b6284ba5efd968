// Starts the Telegram Bot API emulator (telegram-test-api) for the tests: node server.js PORT
// Prints "ready" once it listens on 127.0.0.1:PORT; stops on SIGTERM or when stdin closes.
const TelegramServer = require('telegram-test-api');

const port = Number(process.argv[2]);
const server = new TelegramServer({ port, host: '127.0.0.1', storeTimeout: 600 });

// The emulator does not await its webhook calls; keep it alive when one fails.
process.on('unhandledRejection', (error) => console.error(`unhandled: ${error}`));

server.start().then(() => console.log('ready'));
const stop = () => server.stop().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
