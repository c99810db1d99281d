using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace MLNetTransformerExtensions.Tests.Notebooks;

/// <summary>
/// Runs every notebook in <c>notebooks/</c> as written, in a real .NET Interactive kernel (the dotnet-repl tool from
/// <c>notebooks/dotnet-tools.json</c>), and fails on any cell that errors. The notebooks reference the library as a
/// NuGet package from a local folder feed (an absolute path: .NET Interactive's <c>#i</c> rejects relative ones), at
/// the repository's version with the label <c>-local</c>: the tests pack it there first, and a second test keeps the
/// notebooks' reference in step.
/// </summary>
[TestClass]
public sealed partial class NotebookTests
{
    private static readonly Dictionary<string, string> Quiet = new() { ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1", ["DOTNET_NOLOGO"] = "1" };

    private static string Folder => Path.Combine(TestPaths.RepositoryRoot(), "notebooks");

    public static IEnumerable<object[]> Notebooks =>
        Directory.GetFiles(Folder, "*.ipynb").Select(Path.GetFileName).Order(StringComparer.Ordinal).Select(name => new object[] { name! });

    [TestMethod]
    public void TheFolderHasNotebooks() => Assert.IsTrue(Notebooks.Any(), $"no .ipynb in {Folder}");

    [TestMethod]
    [TestCategory("Slow")]
    [DynamicData(nameof(Notebooks))]
    public void RunsAsWrittenWithoutAnError(string notebook)
    {
        _ = LocalPackage.Value;
        var restore = TestPaths.Run("dotnet", "tool restore", Folder, TimeSpan.FromMinutes(20), Quiet);
        Assert.AreEqual(0, restore.ExitCode, restore.StdOut + restore.StdErr);

        var work = TestPaths.NewTempDirectory();
        try
        {
            var output = Path.Combine(work, notebook);
            var run = TestPaths.Run("dotnet", $"tool run dotnet-repl --run \"{notebook}\" --exit-after-run --output-format ipynb --output-path \"{output}\"",
                Folder, TimeSpan.FromMinutes(40), Quiet);
            Assert.IsTrue(File.Exists(output), $"dotnet-repl wrote no executed notebook (exit {run.ExitCode}): {run.StdOut}{run.StdErr}");

            using var executed = JsonDocument.Parse(File.ReadAllText(output));
            AssertEveryCellRendered(notebook, executed.RootElement);
            Assert.AreEqual(0, run.ExitCode, $"dotnet-repl failed: {run.StdOut}{run.StdErr}");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>
    /// The notebooks are committed with their outputs, so that they read (and show their pictures) on GitHub without
    /// being run: those outputs must be complete, free of errors, and small (SVG images, not megabytes of base64).
    /// </summary>
    [TestMethod]
    [DynamicData(nameof(Notebooks))]
    public void IsCommittedWithItsOutputs(string notebook)
    {
        var path = Path.Combine(Folder, notebook);
        var size = new FileInfo(path).Length;
        Assert.IsLessThan(300_000, size, $"{notebook} is {size / 1000} kB; keep its outputs small (SVG or small PNG images)");
        using var committed = JsonDocument.Parse(File.ReadAllText(path));
        if (!committed.RootElement.GetProperty("cells").EnumerateArray().Any(c => c.TryGetProperty("outputs", out var outputs) && outputs.GetArrayLength() > 0))
        {
            // Visible in the results rather than passed: the slow tier still runs it, but GitHub shows no pictures.
            Assert.Inconclusive($"{notebook} is committed without outputs; run it through the kernel and commit the executed file");
        }

        AssertEveryCellRendered(notebook, committed.RootElement);
    }

    /// <summary>
    /// No cell failed; every cell that writes text shows it; every cell that draws (an SVG image through
    /// <c>DisplayAs("image/svg+xml")</c>, or HTML through <c>display(HTML(...))</c>) shows an image or HTML output.
    /// </summary>
    private static void AssertEveryCellRendered(string notebook, JsonElement root)
    {
        var codeCells = root.GetProperty("cells").EnumerateArray().Where(c => c.GetProperty("cell_type").GetString() == "code").ToList();
        Assert.IsTrue(codeCells.Count > 0, $"{notebook} has no code cell");
        for (var i = 0; i < codeCells.Count; i++)
        {
            var outputs = codeCells[i].GetProperty("outputs").EnumerateArray().ToList();
            foreach (var error in outputs.Where(o => o.GetProperty("output_type").GetString() == "error"))
            {
                Assert.Fail($"{notebook}, code cell {i + 1}: {error.GetProperty("ename").GetString()}: {error.GetProperty("evalue").GetString()}");
            }

            var source = string.Concat(codeCells[i].GetProperty("source").EnumerateArray().Select(line => line.GetString()));
            var mimeTypes = outputs.Where(o => o.TryGetProperty("data", out _)).SelectMany(o => o.GetProperty("data").EnumerateObject().Select(p => p.Name)).ToHashSet();
            if (source.Contains("DisplayAs(\"image/svg+xml\")", StringComparison.Ordinal))
            {
                Assert.IsTrue(mimeTypes.Contains("image/svg+xml"), $"{notebook}, code cell {i + 1} draws an SVG image but shows none");
            }

            if (source.Contains("display(HTML(", StringComparison.Ordinal))
            {
                Assert.IsTrue(mimeTypes.Contains("text/html"), $"{notebook}, code cell {i + 1} displays HTML but shows none");
            }

            if (source.Contains("Console.WriteLine(", StringComparison.Ordinal))
            {
                Assert.IsTrue(outputs.Any(o => o.GetProperty("output_type").GetString() == "stream"), $"{notebook}, code cell {i + 1} writes text but shows none");
            }
        }
    }

    [TestMethod]
    [DynamicData(nameof(Notebooks))]
    public void ReferencesThePackageFromTheLocalFeedAndNothingElse(string notebook)
    {
        var source = string.Concat(JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, notebook))).RootElement.GetProperty("cells").EnumerateArray()
            .Where(c => c.GetProperty("cell_type").GetString() == "code")
            .SelectMany(c => c.GetProperty("source").EnumerateArray().Select(line => line.GetString())));
        StringAssert.Contains(source, $"#i \"nuget: {FeedFromNotebooks}\"");
        var referenced = NuGetReference().Matches(source).Select(m => (Name: m.Groups["name"].Value, Version: m.Groups["version"].Value)).ToList();
        CollectionAssert.AreEqual(new[] { ("MLNetTransformerExtensions", LocalVersion()) }, referenced,
            "a notebook references the library's package at the repository's version, and none of its dependencies by hand");
        Assert.IsFalse(Regex.IsMatch(source, "#r \"(?!nuget:)"), "a notebook references no assembly by path");
    }

    [GeneratedRegex("#r \"nuget: *(?<name>[^,\"]+), *(?<version>[^\"]+)\"")]
    private static partial Regex NuGetReference();

    private const string FeedFromNotebooks = "/tmp/mlnet-transformers-local-feed";

    /// <summary>The version the notebooks reference: the repository's, labelled as a local build.</summary>
    private static string LocalVersion() =>
        XDocument.Load(Path.Combine(TestPaths.RepositoryRoot(), "Directory.Build.props")).Descendants("Version").Single().Value + "-local";

    /// <summary>
    /// Packs the library and its model package into the feed the notebooks read, once per test run, as the notebooks'
    /// text tells a user to. The version is the same every run, so the NuGet cache's copies of it are removed first:
    /// otherwise the kernel would restore an earlier pack.
    /// </summary>
    private static readonly Lazy<string> LocalPackage = new(() =>
    {
        var root = TestPaths.RepositoryRoot();
        var version = LocalVersion();
        var cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        foreach (var id in new[] { "MLNetTransformerExtensions.MiniLM", "MLNetTransformerExtensions" })
        {
            var cached = Path.Combine(cache, id.ToLowerInvariant(), version);
            if (Directory.Exists(cached))
            {
                Directory.Delete(cached, recursive: true);
            }

            var pack = TestPaths.Run("dotnet", $"pack src/{id} -c Release -o \"{FeedFromNotebooks}\" -p:PackageVersion={version} -v q", root, TimeSpan.FromMinutes(30), Quiet);
            Assert.AreEqual(0, pack.ExitCode, pack.StdOut + pack.StdErr);
        }

        return version;
    });
}
