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
            var codeCells = executed.RootElement.GetProperty("cells").EnumerateArray().Where(c => c.GetProperty("cell_type").GetString() == "code").ToList();
            Assert.IsTrue(codeCells.Count > 0, "the notebook has no code cell");
            for (var i = 0; i < codeCells.Count; i++)
            {
                foreach (var error in codeCells[i].GetProperty("outputs").EnumerateArray().Where(o => o.GetProperty("output_type").GetString() == "error"))
                {
                    Assert.Fail($"{notebook}, code cell {i + 1}: {error.GetProperty("ename").GetString()}: {error.GetProperty("evalue").GetString()}");
                }
            }

            Assert.AreEqual(0, run.ExitCode, $"dotnet-repl failed: {run.StdOut}{run.StdErr}");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
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
