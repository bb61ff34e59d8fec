#!/usr/bin/env node
/**
 * The npm package's executable: runs the CLI (cli.ts) with the process's
 * arguments. Only this file runs anything at import; bundled, it becomes
 * the package's `bin`.
 */
import process from "node:process";
import { main } from "./cli.ts";

process.exitCode = await main(process.argv.slice(2));
