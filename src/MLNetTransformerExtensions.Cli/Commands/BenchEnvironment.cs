using System.Globalization;
using System.Reflection;
using System.Text.Json.Nodes;
using MLNetTransformerExtensions.Benchmarks;
using MLNetTransformerExtensions.Runtime;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary>What a benchmark's JSON records about the software and machine, so runs can be compared.</summary>
internal static class BenchEnvironment
{
    public static void AddTo(JsonObject json, TorchRuntimeStatus runtime)
    {
        json["library_version"] = typeof(TorchRuntime).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        json["torchsharp_version"] = runtime.TorchSharpVersion;
        json["libtorch_version"] = runtime.LibTorchVersion;
        json["dotnet_version"] = Environment.Version.ToString();
        json["os"] = System.Runtime.InteropServices.RuntimeInformation.OSDescription;
        json["cpu"] = CpuName();
        json["logical_cores"] = Environment.ProcessorCount;
        json["timestamp_utc"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
    }

    /// <summary>The CPU's model name from /proc/cpuinfo, or the architecture where there is none.</summary>
    private static string CpuName()
    {
        const string cpuinfo = "/proc/cpuinfo";
        var line = File.Exists(cpuinfo) ? File.ReadLines(cpuinfo).FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal)) : null;
        return line?[(line.IndexOf(':') + 1)..].Trim() ?? System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString();
    }
}
