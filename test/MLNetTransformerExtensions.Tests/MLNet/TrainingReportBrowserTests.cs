namespace MLNetTransformerExtensions.Tests.MLNet;

/// <summary>
/// The report in a real browser: headless Chromium (Debian's <c>chromium</c>; CI installs it) renders it with no console
/// messages and saves a phone-width screenshot. Chromium writes each console message to stderr as a CONSOLE line with
/// --enable-logging=stderr; a page that logs an error checks that the detection works.
/// </summary>
[TestClass]
public sealed class TrainingReportBrowserTests
{
    private static (string Console, string Screenshot) Render(string html, string folder, string name)
    {
        var page = Path.Combine(folder, name + ".html");
        File.WriteAllText(page, html);
        var screenshot = Path.Combine(folder, name + ".png");
        var browser = new[] { "chromium", "chromium-browser" }.Select(FindOnPath).FirstOrDefault(p => p is not null)
            ?? throw new AssertFailedException("Chromium is not installed (apt-get install chromium); .ci/run installs it.");
        // --screenshot waits for the load event: a static page (no scripts, nothing to fetch) is complete by then.
        var (exit, _, stderr) = TestPaths.Run(browser,
            $"--headless --no-sandbox --disable-gpu --no-first-run --enable-logging=stderr --v=0 --user-data-dir=\"{Path.Combine(folder, "profile-" + name)}\" " +
            $"--window-size=412,2400 --screenshot=\"{screenshot}\" \"file://{page}\"",
            folder, TimeSpan.FromMinutes(2));
        Assert.AreEqual(0, exit, stderr);
        Assert.IsTrue(File.Exists(screenshot) && new FileInfo(screenshot).Length > 1000, $"no screenshot: {stderr}");
        return (string.Join('\n', stderr.Split('\n').Where(l => l.Contains(":CONSOLE", StringComparison.Ordinal))), screenshot);
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':').Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    [TestMethod]
    [TestCategory("Slow")]
    public void TheReportRendersInChromiumWithoutConsoleMessages()
    {
        var folder = TestPaths.NewTempDirectory();
        try
        {
            var (control, _) = Render("<!DOCTYPE html><html><body><script>console.error('report-check')</script></body></html>", folder, "control");
            StringAssert.Contains(control, "report-check", "console messages are seen");

            var (console, screenshot) = Render(TrainingReportTests.TinyReport().ToHtml(), folder, "report");
            Assert.AreEqual(string.Empty, console);
            var kept = Path.Combine(AppContext.BaseDirectory, "TestResults", "training-report.png");
            Directory.CreateDirectory(Path.GetDirectoryName(kept)!);
            File.Copy(screenshot, kept, overwrite: true);
            File.Copy(Path.Combine(folder, "report.html"), Path.ChangeExtension(kept, ".html"), overwrite: true);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
