using System.Globalization;

namespace MLNetTransformerExtensions.Tests.Packaging;

/// <summary>
/// A throwaway console application that references the library as a packed NuGet package, as a user's would, built
/// with warnings as errors. The library, its model package and the ONNX scoring package are packed once per test run
/// into a local feed, with a prerelease version of their own so the NuGet cache never serves an older pack; other
/// packages restore as usual.
/// </summary>
public sealed class PackagedApp : IDisposable
{
    private static readonly Lazy<(string Feed, string Version)> Packed = new(Pack);
    private static readonly Dictionary<string, string> Environment = new() { ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1", ["DOTNET_NOLOGO"] = "1" };

    private PackagedApp(string folder) => Folder = folder;

    public string Folder { get; }

    public static string Feed => Packed.Value.Feed;

    public static string Version => Packed.Value.Version;

    /// <summary>The packages the library's pack writes into the feed, library first.</summary>
    public static IReadOnlyList<string> PackageIds { get; } = ["MLNetTransformerExtensions", "MLNetTransformerExtensions.MiniLM", "MLNetTransformerExtensions.Onnx"];

    /// <summary>Writes and builds an app with the given Program.cs that references the packed library.</summary>
    /// <param name="program">The app's Program.cs.</param>
    /// <param name="mlNetVersion">A Microsoft.ML version the app references itself, as an app that already uses ML.NET does; null for none.</param>
    /// <param name="files">Further files to write into the app's folder (name → content).</param>
    /// <param name="package">Which of our packages the app references (it brings the library with it).</param>
    public static PackagedApp Build(string program, string? mlNetVersion = null, IReadOnlyDictionary<string, string>? files = null, string package = "MLNetTransformerExtensions")
    {
        var folder = TestPaths.NewTempDirectory();
        var app = new PackagedApp(folder);
        File.WriteAllText(Path.Combine(folder, "NuGet.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="local-test-feed" value="{Feed}" />
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(folder, "app.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="{package}" Version="{Version}" />
                {(mlNetVersion is null ? string.Empty : $"<PackageReference Include=\"Microsoft.ML\" Version=\"{mlNetVersion}\" />")}
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(folder, "Program.cs"), program);
        foreach (var (name, content) in files ?? new Dictionary<string, string>())
        {
            File.WriteAllText(Path.Combine(folder, name), content);
        }

        var build = TestPaths.Run("dotnet", "build -c Release -v q", folder, TimeSpan.FromMinutes(30), Environment);
        Assert.AreEqual(0, build.ExitCode, build.StdOut + build.StdErr);
        return app;
    }

    /// <summary>Runs the built app with arguments, and with further environment variables if given.</summary>
    public (int ExitCode, string StdOut, string StdErr) Run(string arguments = "", IReadOnlyDictionary<string, string>? environment = null) =>
        TestPaths.Run("dotnet", $"run -c Release --no-build -- {arguments}", Folder, TimeSpan.FromMinutes(20),
            new Dictionary<string, string>(Environment.Concat(environment ?? new Dictionary<string, string>())));

    public void Dispose() => Directory.Delete(Folder, recursive: true);

    /// <summary>Removes the packed packages from the feed and the NuGet cache (called once, after all tests).</summary>
    public static void RemovePackFromTheNuGetCache()
    {
        if (!Packed.IsValueCreated)
        {
            return;
        }

        Directory.Delete(Path.GetDirectoryName(Feed)!, recursive: true);
        foreach (var id in PackageIds)
        {
            var cached = Path.Combine(System.Environment.GetEnvironmentVariable("NUGET_PACKAGES")
                ?? Path.Combine(System.Environment.GetFolderPath(System.Environment.SpecialFolder.UserProfile), ".nuget", "packages"),
                id.ToLowerInvariant(), Version);
            if (Directory.Exists(cached))
            {
                Directory.Delete(cached, recursive: true);
            }
        }
    }

    private static (string, string) Pack()
    {
        var root = TestPaths.RepositoryRoot();
        var feed = Path.Combine(TestPaths.NewTempDirectory(), "feed");
        var version = "0.0.0-test." + DateTime.UtcNow.ToString("yyyyMMddHHmmssfff", CultureInfo.InvariantCulture);
        // PackageVersion only: the build output is the one the solution's build wrote, so packing compiles nothing again.
        foreach (var id in PackageIds.Reverse())
        {
            var project = Path.Combine(root, "src", id, id + ".csproj");
            var pack = TestPaths.Run("dotnet", $"pack \"{project}\" -c Release -o \"{feed}\" -p:PackageVersion={version} -v q", root, TimeSpan.FromMinutes(20));
            Assert.AreEqual(0, pack.ExitCode, pack.StdOut + pack.StdErr);
        }

        return (feed, version);
    }
}

/// <summary>Runs after the whole suite.</summary>
[TestClass]
public static class PackagingCleanup
{
    [AssemblyCleanup]
    public static void Cleanup() => PackagedApp.RemovePackFromTheNuGetCache();
}
