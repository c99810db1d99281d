using System.Globalization;

namespace MLNetTransformerExtensions.Tests.Packaging;

/// <summary>Packs the library and proves the native fix reaches an application that references the package.</summary>
[TestClass]
public sealed class PackageConsumerTests
{
    [TestMethod]
    [TestCategory("Slow")]
    [Timeout(900_000, CooperativeCancellation = true)]
    public void ConsoleAppReferencingThePackedPackageRunsTorch()
    {
        var root = TestPaths.RepositoryRoot();
        var work = TestPaths.NewTempDirectory();
        var feed = Path.Combine(work, "feed");
        var app = Path.Combine(work, "app");
        Directory.CreateDirectory(app);
        // A version of its own, so the NuGet cache never serves an older pack of the same version.
        var version = "0.0.0-consumer." + DateTime.UtcNow.ToString("yyyyMMddHHmmssfff", CultureInfo.InvariantCulture);
        try
        {
            var pack = TestPaths.Run("dotnet", $"pack \"{Path.Combine(root, "src", "MLNetTransformerExtensions", "MLNetTransformerExtensions.csproj")}\" -c Release -o \"{feed}\" -p:PackageVersion={version} -v q", root, TimeSpan.FromMinutes(5));
            Assert.AreEqual(0, pack.ExitCode, pack.StdOut + pack.StdErr);
            var package = Path.Combine(feed, $"MLNetTransformerExtensions.{version}.nupkg");
            Assert.IsTrue(File.Exists(package), "dotnet pack wrote no package");
            using (var zip = System.IO.Compression.ZipFile.OpenRead(package))
            {
                var names = zip.Entries.Select(e => e.FullName).ToList();
                CollectionAssert.Contains(names, "README.md");
                CollectionAssert.Contains(names, "lib/net10.0/MLNetTransformerExtensions.dll");
                CollectionAssert.Contains(names, "lib/net10.0/MLNetTransformerExtensions.xml");
            }

            File.WriteAllText(Path.Combine(app, "NuGet.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <add key="local-test-feed" value="{feed}" />
                  </packageSources>
                </configuration>
                """);
            File.WriteAllText(Path.Combine(app, "app.csproj"), $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup>
                    <OutputType>Exe</OutputType>
                    <TargetFramework>net10.0</TargetFramework>
                    <Nullable>enable</Nullable>
                    <ImplicitUsings>enable</ImplicitUsings>
                  </PropertyGroup>
                  <ItemGroup>
                    <PackageReference Include="MLNetTransformerExtensions" Version="{version}" />
                  </ItemGroup>
                </Project>
                """);
            File.WriteAllText(Path.Combine(app, "Program.cs"), """
                using MLNetTransformerExtensions.Runtime;
                var status = TorchRuntime.EnsureInitialized();
                var check = RuntimeCheck.Run();
                using var x = TorchSharp.torch.ones(2, 3);
                Console.WriteLine($"fix={status.Fix} sum={x.sum().item<float>()} grad={check.GradientNorm > 0}");
                """);

            var env = new Dictionary<string, string> { ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1", ["DOTNET_NOLOGO"] = "1" };
            var build = TestPaths.Run("dotnet", "build -c Release -v q", app, TimeSpan.FromMinutes(8), env);
            Assert.AreEqual(0, build.ExitCode, build.StdOut + build.StdErr);
            var run = TestPaths.Run("dotnet", "run -c Release --no-build", app, TimeSpan.FromMinutes(2), env);
            Assert.AreEqual(0, run.ExitCode, run.StdOut + run.StdErr);
            StringAssert.Contains(run.StdOut, "sum=6 grad=True");
            if (OperatingSystem.IsLinux())
            {
                StringAssert.Matches(run.StdOut, new System.Text.RegularExpressions.Regex("fix=(Applied|NotNeeded)"));
            }
        }
        finally
        {
            Directory.Delete(work, recursive: true);
            var cached = Path.Combine(Environment.GetEnvironmentVariable("NUGET_PACKAGES")
                ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages"),
                "mlnettransformerextensions", version);
            if (Directory.Exists(cached))
            {
                Directory.Delete(cached, recursive: true);
            }
        }
    }
}
