// report_check.js - render qforge HTML reports in headless Chromium (Debian's
// /usr/bin/chromium, driven by puppeteer-core) and check that each loads
// without console errors, page errors, dialogs or network requests, that
// its SVG charts exist and have a non-zero rendered size, and that any
// expected text shows as text. Saves a full-page screenshot of each. One
// browser serves every page (starting it is the slow part).
// usage: node report_check.js [--chromium PATH]
//          --html REPORT.html --shot SHOT.png [--min-svg N] [--expect-text S]...
//          [--html ... (one group per page)]
// Prints one JSON line per page with what it measured; exit 0 when every
// check holds, 1 when one fails, 2 on bad usage or when the browser cannot
// start.
'use strict';
const path = require('path');

function parseArgs(argv) {
  const a = { pages: [], chromium: '/usr/bin/chromium', bad: false };
  let cur = null;
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i], v = argv[i + 1];
    if (k === '--chromium') { a.chromium = v; i++; continue; }
    if (k === '--html') {
      cur = { html: v, shot: null, minSvg: 1, expect: [] };
      a.pages.push(cur);
      i++;
      continue;
    }
    if (!cur || v === undefined) { a.bad = true; break; }
    if (k === '--shot') cur.shot = v;
    else if (k === '--min-svg') cur.minSvg = Number(v);
    else if (k === '--expect-text') cur.expect.push(v);
    else { a.bad = true; break; }
    i++;
  }
  if (!a.pages.length || a.pages.some((p) => !p.shot || !Number.isFinite(p.minSvg))) a.bad = true;
  return a;
}

async function checkPage(browser, p) {
  const problems = [];
  const page = await browser.newPage();
  try {
    await page.setViewport({ width: 1200, height: 900 });
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning' || m.type() === 'assert')
        problems.push('console ' + m.type() + ': ' + m.text());
    });
    page.on('pageerror', (e) => problems.push('page error: ' + e.message));
    page.on('dialog', async (d) => {
      problems.push('dialog opened (a script ran): ' + d.message());
      await d.dismiss();
    });
    const url = 'file://' + path.resolve(p.html);
    page.on('request', (r) => {
      if (r.url() !== url && !r.url().startsWith('data:')) problems.push('request to ' + r.url());
    });
    const resp = await page.goto(url, { waitUntil: 'load' });
    if (!resp || !resp.ok()) problems.push('load failed');
    const info = await page.evaluate(() => {
      const svgs = Array.from(document.querySelectorAll('svg'));
      const sizes = svgs.map((s) => {
        const r = s.getBoundingClientRect();
        return [Math.round(r.width), Math.round(r.height), s.querySelectorAll('*').length];
      });
      return {
        title: document.title,
        svg: sizes,
        scripts: document.querySelectorAll('script').length,
        sections: Array.from(document.querySelectorAll('section[id]')).map((s) => s.id),
        text: document.body.innerText,
      };
    });
    if (info.svg.length < p.minSvg)
      problems.push(`${info.svg.length} SVG charts, wanted at least ${p.minSvg}`);
    info.svg.forEach((s, i) => {
      if (!(s[0] > 0 && s[1] > 0)) problems.push(`svg #${i} has rendered size ${s[0]}x${s[1]}`);
      if (s[2] < 2) problems.push(`svg #${i} is empty`);
    });
    if (info.scripts !== 0) problems.push(`${info.scripts} <script> elements in the DOM`);
    for (const t of p.expect)
      if (!info.text.includes(t)) problems.push('text not shown: ' + JSON.stringify(t));
    await page.screenshot({ path: p.shot, fullPage: true });
    console.log(JSON.stringify({ page: path.basename(p.html), title: info.title,
                                 svg: info.svg.length,
                                 sizes: info.svg.map((s) => s[0] + 'x' + s[1]),
                                 sections: info.sections, problems }));
  } catch (e) {
    problems.push('exception: ' + e.message);
    console.log(JSON.stringify({ page: path.basename(p.html), problems }));
  } finally {
    await page.close();
  }
  return problems.length;
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  if (a.bad) {
    console.error('usage: node report_check.js [--chromium PATH] --html R.html --shot S.png ' +
                  '[--min-svg N] [--expect-text S]... [--html ...]');
    return 2;
  }
  let puppeteer;
  try {
    puppeteer = require('puppeteer-core');
  } catch (e) {
    console.error('report_check: puppeteer-core is not installed (npm install in tests/node)');
    return 2;
  }
  let browser;
  try {
    browser = await puppeteer.launch({
      executablePath: a.chromium,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
  } catch (e) {
    console.error('report_check: cannot start ' + a.chromium + ': ' + e.message);
    return 2;
  }
  let failed = 0;
  try {
    for (const p of a.pages) failed += (await checkPage(browser, p)) ? 1 : 0;
  } finally {
    await browser.close();
  }
  return failed ? 1 : 0;
}

main().then((rc) => process.exit(rc), (e) => {
  console.error('report_check: ' + e.message);
  process.exit(2);
});
