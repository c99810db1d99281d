using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace MLNetTransformerExtensions.Tests.Notebooks;

/// <summary>
/// Runs every notebook in <c>notebooks/</c> as written, in a real .NET Interactive kernel (the dotnet-repl tool from
/// <c>notebooks/dotnet-tools.json</c>), and fails on any cell that errors. The notebooks reference the library's
/// Release build and its dependencies by version, so a second test keeps those versions in step with the library.
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
    [Timeout(900_000, CooperativeCancellation = true)]
    [DynamicData(nameof(Notebooks))]
    public void RunsAsWrittenWithoutAnError(string notebook)
    {
        EnsureReleaseBuildOfTheLibrary();
        var restore = TestPaths.Run("dotnet", "tool restore", Folder, TimeSpan.FromMinutes(5), Quiet);
        Assert.AreEqual(0, restore.ExitCode, restore.StdOut + restore.StdErr);

        var work = TestPaths.NewTempDirectory();
        try
        {
            var output = Path.Combine(work, notebook);
            var run = TestPaths.Run("dotnet", $"tool run dotnet-repl --run \"{notebook}\" --exit-after-run --output-format ipynb --output-path \"{output}\"",
                Folder, TimeSpan.FromMinutes(12), Quiet);
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
    public void ReferencesTheLibrarysReleaseBuildAndItsDependenciesAtTheLibrarysVersions(string notebook)
    {
        var root = TestPaths.RepositoryRoot();
        var versions = XDocument.Load(Path.Combine(root, "Directory.Packages.props")).Descendants("PackageVersion")
            .ToDictionary(p => (string)p.Attribute("Include")!, p => ((string)p.Attribute("Version")!).Trim('[', ']'), StringComparer.OrdinalIgnoreCase);
        var dependencies = XDocument.Load(Path.Combine(root, "src", "MLNetTransformerExtensions", "MLNetTransformerExtensions.csproj")).Descendants("PackageReference")
            .Where(p => (string?)p.Attribute("PrivateAssets") != "all")
            .Select(p => (string)p.Attribute("Include")!)
            .ToList();

        var source = string.Concat(JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, notebook))).RootElement.GetProperty("cells").EnumerateArray()
            .Where(c => c.GetProperty("cell_type").GetString() == "code")
            .SelectMany(c => c.GetProperty("source").EnumerateArray().Select(line => line.GetString())));
        StringAssert.Contains(source, "#r \"../src/MLNetTransformerExtensions/bin/Release/net10.0/MLNetTransformerExtensions.dll\"");
        var referenced = NuGetReference().Matches(source).ToDictionary(m => m.Groups["name"].Value, m => m.Groups["version"].Value, StringComparer.OrdinalIgnoreCase);
        foreach (var dependency in dependencies)
        {
            Assert.IsTrue(referenced.TryGetValue(dependency, out var version), $"{notebook} does not reference the library's dependency {dependency}");
            Assert.AreEqual(versions[dependency], version, $"{notebook} references {dependency} at another version than Directory.Packages.props");
        }
    }

    [GeneratedRegex("#r \"nuget: *(?<name>[^,\"]+), *(?<version>[^\"]+)\"")]
    private static partial Regex NuGetReference();

    /// <summary>The notebooks reference the Release build; a Debug test run builds it first.</summary>
    private static void EnsureReleaseBuildOfTheLibrary()
    {
        var root = TestPaths.RepositoryRoot();
        if (File.Exists(Path.Combine(root, "src", "MLNetTransformerExtensions", "bin", "Release", "net10.0", "MLNetTransformerExtensions.dll")))
        {
            return;
        }

        var build = TestPaths.Run("dotnet", "build src/MLNetTransformerExtensions -c Release -v q", root, TimeSpan.FromMinutes(8), Quiet);
        Assert.AreEqual(0, build.ExitCode, build.StdOut + build.StdErr);
    }
}
